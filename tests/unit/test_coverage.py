"""The README's per-operation coverage table matches the models and the providers."""

from pathlib import Path

from searchtrail.coverage import coverage_markdown

README = Path(__file__).parents[2] / "README.md"


def test_readme_table_is_current() -> None:
    text = README.read_text()
    assert coverage_markdown() in text, (
        "README.md's coverage table is stale: run python -m searchtrail.coverage --write README.md")


def test_every_aoss_operation_is_served() -> None:
    assert "| OpenSearch Serverless (`aoss`) | 54 | 54 |" in coverage_markdown()
