import pydoc_data.topics

import pytest

from tasks.spr.text import word_count


@pytest.fixture(scope="session")
def reference_docs() -> list[str]:
    """Real documents that ship offline: Python reference topics of 300-3000 words."""
    docs = [t for _, t in sorted(pydoc_data.topics.topics.items())]
    return [t for t in docs if 300 <= word_count(t) <= 3000][:20]
