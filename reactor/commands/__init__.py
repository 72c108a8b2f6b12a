"""One Typer sub-app per scenario; `_common` holds the conventions every command follows."""
