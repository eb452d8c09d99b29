"""The gains table reported to the operator."""

from __future__ import annotations

__all__ = ["format_gains_table"]

from collections.abc import Mapping

from ..cp.camera.description import InstrumentDescription


def format_gains_table(
    gains: Mapping[tuple[int, int], Mapping[int, Mapping[str, float]]], instrument: InstrumentDescription
) -> str:
    """Format gains per flat pair, per detector, per amplifier.

    Parameters
    ----------
    gains : mapping
        ``{(exposure 1, exposure 2): {detector id: {amp: gain}}}``, gains
        in e-/ADU.
    instrument : `InstrumentDescription`
        Gives detector names.
    """
    lines = ["Gains estimated from flat pairs (e-/ADU):"]
    for (first, second), detectors in gains.items():
        lines.append(f"    Flat pair {first} {second}:")
        for detector_id, amps in sorted(detectors.items()):
            name = instrument.detector(detector_id).full_name
            lines.append(f"        Detector {detector_id} ({name}):")
            for amp, gain in sorted(amps.items()):
                lines.append(f"            {amp}: {gain:.4f}")
    return "\n".join(lines)
