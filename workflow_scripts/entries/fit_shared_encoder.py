"""Entry of rule fit_shared_encoder: the shared encoder (config/encoder `kind`: pca or autoencoder) on the pooled
TRAINING rows of every coin.

Per coin the rows are the intersection of its windows' training segments (shared_encoder.training_range), so no
row the encoder sees is validation or test for any window. The columns are the coins' own features common to
all of them (config/encoder `columns: own`). Output: one canonical JSON file (PCA components or the autoencoder's
weights, no pickle); its sha256 is the encoder version.
"""

import pandas as pd

from workflow_scripts import artifacts
from workflow_scripts.shared_encoder import (
    fit_shared_encoder,
    save_shared_encoder,
    training_range,
    training_rows,
)


def main(args) -> None:
    spec = args.spec
    n, w = len(args.symbols), len(args.windows)
    if len(args.features) != n or len(args.splits) != n * w:
        raise ValueError(f"need one --features per symbol ({n}) and one --splits per symbol and window ({n * w}, "
                         "symbol-major)")
    features = {s: pd.read_parquet(p) for s, p in zip(args.symbols, args.features)}
    ranges = {s: training_range([artifacts.read_json(p) for p in args.splits[i * w:(i + 1) * w]])
              for i, s in enumerate(args.symbols)}
    encoder = fit_shared_encoder(training_rows(features, ranges), spec)
    version = save_shared_encoder(args.out, encoder)
    print(f"{spec['kind']} encoder {args.out}: {len(encoder.columns)} columns, {encoder.n_train_rows} training rows, "
          f"{len(encoder.output_columns)} outputs, version {version}; training rows {ranges}")


if __name__ == "__main__":
    from workflow_scripts.entries import _cli

    p = _cli.parser(__doc__)
    p.add_argument("--symbols", nargs="+", required=True)
    p.add_argument("--windows", nargs="+", type=int, required=True)
    p.add_argument("--features", nargs="+", required=True, help="results/features/base/{symbol}.parquet per symbol")
    p.add_argument("--splits", nargs="+", required=True, help="results/splits/{symbol}/w{window}.json, symbol-major")
    p.add_argument("--spec", type=_cli.json_arg, required=True, help="the encoder config group")
    p.add_argument("--out", required=True)
    _cli.run(main, p.parse_args())
