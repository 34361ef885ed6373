"""The per-operation coverage table, generated from botocore's models and the providers.

`python -m searchtrail.coverage --write README.md` refreshes the table between its markers;
a test fails when the README's table and the code disagree.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import botocore.session

START, END = "<!-- coverage:start -->", "<!-- coverage:end -->"
TITLES = {"opensearchserverless": "OpenSearch Serverless (`aoss`)", "cloudtrail": "CloudTrail",
          "iam": "IAM", "sts": "STS", "organizations": "Organizations"}


def implemented() -> dict[str, set[str]]:
    """The operations each provider serves (read from the providers themselves)."""
    from searchtrail.services.aoss.provider import OpenSearchServerlessProvider
    from searchtrail.services.cloudtrail.provider import CloudTrailProvider
    from searchtrail.services.iam.provider import IamProvider
    from searchtrail.services.organizations.provider import OrganizationsProvider
    from searchtrail.services.sts.provider import StsProvider

    providers = {"opensearchserverless": OpenSearchServerlessProvider(),
                 "cloudtrail": CloudTrailProvider(), "iam": IamProvider(), "sts": StsProvider(),
                 "organizations": OrganizationsProvider()}
    return {name: set(provider.handlers()) for name, provider in providers.items()}


def coverage_markdown() -> str:
    session = botocore.session.get_session()
    served = implemented()
    lines = [START, "", "| service | operations served | of the model's |", "|---|---:|---:|"]
    details = []
    for service, title in TITLES.items():
        model = session.get_service_model(service)
        names = sorted(model.operation_names)
        done = [name for name in names if name in served[service]]
        missing = [name for name in names if name not in served[service]]
        lines.append(f"| {title} | {len(done)} | {len(names)} |")
        details.append(f"**{title}** ({model.api_version}): "
                       + ("every operation." if not missing else
                          "served: " + ", ".join(f"`{n}`" for n in done) + ". "
                          "Not yet (answered with a modelled 400 saying so): "
                          + ", ".join(f"`{n}`" for n in missing) + "."))
    return "\n".join([*lines, "", *("\n\n".join(details).splitlines()), "", END])


def replace_table(text: str) -> str:
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"no {START} … {END} markers in the file")
    return pattern.sub(lambda _: coverage_markdown(), text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="rewrite the table in this markdown file")
    args = parser.parse_args()
    if args.write:
        args.write.write_text(replace_table(args.write.read_text()))
    else:
        print(coverage_markdown())


if __name__ == "__main__":
    main()
