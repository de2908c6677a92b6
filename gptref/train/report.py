"""The homework's report folder: loss curves PNG, samples.txt, config.json, metrics.json and report.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def plot_losses(phases: dict[str, dict[str, list]], path: Path) -> Path:
    """One panel per phase: per-step train loss, and the periodic train/val estimates."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(phases), figsize=(6 * len(phases), 4), squeeze=False)
    for ax, (name, hist) in zip(axes[0], phases.items()):
        if hist["train"]:
            steps, losses = zip(*hist["train"])
            ax.plot(steps, losses, alpha=0.35, label="train (per step)")
        if hist["eval"]:
            steps, tr, va = zip(*hist["eval"])
            ax.plot(steps, tr, "o-", label="train (estimate)")
            ax.plot(steps, va, "o-", label="val")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats/token)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(out: Path, config: dict[str, Any], metrics: dict[str, Any], samples: dict[str, str],
                 phases: dict[str, dict[str, list]]) -> dict[str, Path]:
    """Write every report file into out and return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "curves": plot_losses(phases, out / "loss_curves.png"),
        "samples": out / "samples.txt",
        "config": out / "config.json",
        "metrics": out / "metrics.json",
        "report": out / "report.md",
    }
    files["samples"].write_text("".join(f"===== {k} =====\n{v}\n\n" for k, v in samples.items()))
    files["config"].write_text(json.dumps(config, indent=2) + "\n")
    files["metrics"].write_text(json.dumps(metrics, indent=2) + "\n")
    lines = ["# nanoGPT homework report", "", "![loss curves](loss_curves.png)", "", "## Final losses", "",
             "| phase | train loss | val loss | iterations | tokens/s | time (s) |", "|---|---|---|---|---|---|"]
    for name, m in metrics["phases"].items():
        lines.append(f"| {name} | {m['final_train_loss']:.4f} | {m['final_val_loss']:.4f} | {m['iters']} | "
                     f"{m['tokens_per_s']:.0f} | {m['seconds']:.1f} |")
    lines += ["", f"Chance level (uniform over {metrics['vocab_size']} tokens): {metrics['chance_loss']:.4f} nats.",
              f"Milton val loss before fine-tuning: {metrics['milton_val_before']:.4f}; after: "
              f"{metrics['milton_val_after']:.4f}.", f"Total time: {metrics['total_seconds']:.1f} s.", "",
              "## Samples", ""]
    for k, v in samples.items():
        lines += [f"### {k}", "", "```", v, "```", ""]
    lines += ["## Config", "", "```json", json.dumps(config, indent=2), "```", ""]
    files["report"].write_text("\n".join(lines))
    return files
