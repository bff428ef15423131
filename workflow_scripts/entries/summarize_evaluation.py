"""Entry of rule summarize_evaluation: gate verdicts, grades and the chosen variants of the whole run."""

from pathlib import Path

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.best_variant import to_markdown
from workflow_scripts.variant_evaluation import run_summary


def main(args) -> None:
    files = sorted(p for d in args.evaluations for p in Path(d).glob("*.json"))
    summary = run_summary([artifacts.read_json(p) for p in files],
                          [artifacts.read_json(p) for p in args.choices], args.grades)
    artifacts.write_json(args.out_json, summary)
    gates = summary["gates"]
    lines = [
        "# Evaluation after costs", "",
        f"**{summary['message']}**", "",
        f"Chosen variants (best validation AP per symbol, window and side) passing the gates: "
        f"{summary['chosen_passed']} of {len(summary['chosen'])}.", "",
        "Failed gates (count of variants): " + (", ".join(f"{k} {v}" for k, v in gates["failure_reasons"].items())
                                                or "none"), "",
        "Grades of all evaluated variants: " + ", ".join(f"{k} {v}" for k, v in summary["grade_counts"].items()),
        "",
    ]
    table = to_markdown(pd.DataFrame(summary["chosen"]), "Chosen variants").split("\n", 2)[2]
    artifacts.write_text(args.out_markdown, "\n".join(lines) + "\n## Chosen variants\n" + table)
    print(summary["message"])


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--evaluations", nargs="+", required=True, help="evaluation folders of (symbol, window)")
    p.add_argument("--choices", nargs="+", required=True)
    p.add_argument("--grades", type=_cli.json_arg, required=True)
    p.add_argument("--out-json", required=True)
    p.add_argument("--out-markdown", required=True)
    _cli.run(main, p.parse_args())
