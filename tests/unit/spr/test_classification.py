import json
from collections import Counter
from pathlib import Path

from tasks.spr.analyze import analyze, classify
from tasks.spr.models import CONTENT_TYPES

# a labelled set of real-looking samples, 8 per content type
SAMPLES = [
    (s["content_type"], s["text"])
    for s in json.loads((Path(__file__).with_name("classification_samples.json")).read_text())
]


def test_fixture_set_has_at_least_60_samples_covering_every_type():
    counts = Counter(label for label, _ in SAMPLES)
    assert len(SAMPLES) >= 60
    assert set(counts) == set(CONTENT_TYPES)


def test_classification_accuracy_on_the_labelled_set_is_at_least_90_percent(capsys):
    wrong = [(label, classify(text)) for label, text in SAMPLES if classify(text) != label]
    accuracy = 1 - len(wrong) / len(SAMPLES)
    with capsys.disabled():
        print(f"\nSPR classification accuracy: {accuracy:.3f} on {len(SAMPLES)} samples; {wrong}")
    assert accuracy >= 0.9


def test_features_match_whole_words_not_substrings():
    prose = (
        "The classification of returns in the subclass of important imports was discussed "
        "at length; the classroom agreed that the importance of defaults was overstated. "
    ) * 3
    assert classify(prose) != "code"


def test_analysis_reports_strategy_complexity_and_language():
    label, text = SAMPLES[0]
    result = analyze(text)
    assert result.content_type == label
    assert result.strategy == "identifier-first"
    assert 0 <= result.complexity <= 1
    assert result.language == "en"
    assert result.word_count == len(text.split())
