"""Start-up patches to moto (filled in by the emulator work)."""


def apply() -> None:
    return None
