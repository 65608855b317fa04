"""The ``latent-verse`` command: one subcommand per tool, each handing the rest of its options to that tool.

    latent-verse explore                      # the explorer app; options go on to `streamlit run`
    latent-verse train --data data/poetry --out checkpoints/my-model
    latent-verse map --checkpoint checkpoints/my-model
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

# subcommand: (its module, what it does). explore runs the module's app.py under streamlit, the others
# call the module's main(argv), so each one's --help is its module's.
COMMANDS = {
    "explore": ("explorer_app", "open the explorer app (streamlit run; its options pass through)"),
    "train": ("vae_core.train", "train a model into a checkpoint directory"),
    "evaluate": ("vae_core.evaluate", "held-out metrics of a checkpoint"),
    "map": ("vae_core.projection", "build a checkpoint's map of a corpus (python -m vae_core.projection)"),
    "card": ("vae_core.card", "rewrite a checkpoint's model card"),
    "demo": ("vae_core.demo", "a terminal tour: reconstructions, a homotopy, neighbours, prior samples"),
}
USAGE = "usage: latent-verse <command> [options]   (latent-verse <command> --help: its options)\n\n" + "\n".join(
    f"  {name:<9} {about}" for name, (_, about) in COMMANDS.items())


def explore(module: str, argv: list[str]) -> NoReturn:
    """Become ``streamlit run`` on the installed app (which reads its own ``.streamlit/config.toml``,
    whatever the working directory), or, with ``--processes N``, N of them behind one port."""
    sys.exit(importlib.import_module(f"{module}.serve").main(argv))


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(USAGE)
        return 0
    if not argv or argv[0] not in COMMANDS:
        print(f"latent-verse: unknown command {argv[0]!r}\n\n{USAGE}" if argv else USAGE, file=sys.stderr)
        return 2
    module = COMMANDS[argv[0]][0]
    if argv[0] == "explore":
        explore(module, argv[1:])
    return importlib.import_module(module).main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
