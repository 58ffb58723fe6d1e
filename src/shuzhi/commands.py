"""Sub-commands of the CLI that run stages (filled in below)."""


def register(sub) -> None:
    pass
