"""The hierarchical RL line of issue 17 (seeds 003 and 004): a costed trading environment, a CNN-LSTM feature
extractor, stable-baselines3 agents, Optuna studies of them and seed 004's trial codes. docs/AGENTS.md."""
