"""Entry of rule write_resolved_config: the resolved configuration of the run, next to its results."""

import json

from omegaconf import OmegaConf

from workflow_scripts import artifacts


def main(args) -> None:
    cfg = json.loads(args.config)
    artifacts.write_text(args.out_yaml, OmegaConf.to_yaml(OmegaConf.create(cfg), sort_keys=True))
    artifacts.write_json(args.out_json, cfg)


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--config", required=True, help="the resolved config as JSON")
    p.add_argument("--out-yaml", required=True)
    p.add_argument("--out-json", required=True)
    _cli.run(main, p.parse_args())
