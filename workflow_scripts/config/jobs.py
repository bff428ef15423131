"""Entry of rule write_resolved_config (rules/config.smk): the resolved config next to the results, and the
universe the run plans (its coins, each coin's trainable windows, what was left out and why)."""

from omegaconf import OmegaConf

from workflow_scripts import artifacts


def write_resolved_config(job) -> None:
    cfg = job.params.config
    artifacts.write_text(job.output.yaml, OmegaConf.to_yaml(OmegaConf.create(cfg), sort_keys=True))
    artifacts.write_json(job.output.json, cfg)
    artifacts.write_json(job.output.universe, job.params.universe)
