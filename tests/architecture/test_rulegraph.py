"""docs/ARCHITECTURE.md draws the rule graph Snakemake plans: the same edges, with every optional rule on."""

from tests.architecture.rulegraph import ROOT, doc_edges, mermaid, rulegraph_edges


def test_architecture_doc_draws_the_rule_graph_edge_for_edge():
    planned = rulegraph_edges()
    drawn = doc_edges((ROOT / "docs" / "ARCHITECTURE.md").read_text())
    assert drawn == planned, (
        f"missing: {sorted(planned - drawn)}, extra: {sorted(drawn - planned)}; new block:\n"
        + mermaid(planned)
    )


def test_edge_reader_reads_chains_and_ignores_comments():
    text = (
        'x\n```mermaid\nflowchart TD\n    subgraph s["rules/s.smk"]\n'
        "    a --> b --> c  %% d --> e\n    end\n```\n"
    )
    assert doc_edges(text) == {("a", "b"), ("b", "c")}
