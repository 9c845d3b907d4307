"""Placeholder CLI entry point; replaced below."""


def main() -> int:
    return 0
