"""Named hardware parameter sets with their sources.

Each profile maps parameter names to :class:`Param` (value in the unit of the name's
suffix, SI otherwise; plus its source). :func:`profile` returns plain values for use as
defaults. ``quality`` says how a number was obtained:

* ``"reported"``: the value as stated in the cited paper or datasheet;
* ``"derived"``: computed from reported values (the note says how);
* ``"representative"``: a typical value of the class of device, consistent with the
  cited source but not a single measured figure; check your own hardware.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import ParameterError

__all__ = ["PROFILES", "Param", "describe", "profile", "profile_names"]


@dataclass(frozen=True)
class Param:
    """One parameter value with its unit, source and how it was obtained."""

    value: float
    unit: str
    source: str
    quality: str = "reported"
    note: str = ""


_HUMPHREYS = "Humphreys et al., Nature 558, 268 (2018)"
_HENSEN = "Hensen et al., Nature 526, 682 (2015)"
_POMPILI = "Pompili et al., Science 372, 259 (2021)"
_ABOBEIH = "Abobeih et al., Nat. Commun. 9, 2552 (2018)"
_STEPHENSON = "Stephenson et al., PRL 124, 110501 (2020)"
_HARTY = "Harty et al., PRL 113, 220501 (2014)"
_BALLANCE = "Ballance et al., PRL 117, 060504 (2016)"
_YANG = "Yang et al., Nat. Photon. 10, 381 (2016)"
_HADFIELD = "Hadfield, Nat. Photon. 3, 696 (2009)"
_REDDY = "Reddy et al., Optica 7, 1649 (2020)"
_EXCELITAS = "Excelitas SPCM-AQRH datasheet"
_SAHU = "Sahu et al., Nat. Commun. 13, 1276 (2022)"
_PRS10 = "Stanford Research Systems PRS10 rubidium oscillator datasheet"
_RILEY = "Riley, NIST SP 1065 (2008)"
_CORNING = "Corning SMF-28 Ultra optical fiber product information"
_MALITSON = "Malitson, J. Opt. Soc. Am. 55, 1205 (1965)"

_P = Param

_DATA: dict[str, dict[str, Param]] = {
    "nv-delft": {
        "wavelength_nm": _P(637.0, "nm", _HENSEN, note="NV zero-phonon line"),
        "optical_lifetime_s": _P(
            12e-9, "s", _HENSEN, "representative", "excited-state lifetime ~12 ns"
        ),
        "t1_s": _P(3.6e3, "s", _ABOBEIH, note="electron spin relaxation at 3.7 K"),
        "t2_s": _P(1.58, "s", _ABOBEIH, note="electron spin coherence under dynamical decoupling"),
        "t2_star_s": _P(
            5e-6, "s", _ABOBEIH, "representative", "Ramsey dephasing, natural 13C abundance"
        ),
        "link_decoherence_rate_hz": _P(
            5.0, "Hz", _HUMPHREYS, note="remote state under dynamical decoupling"
        ),
        "alpha": _P(
            0.1, "1", _HUMPHREYS, "representative", "bright-state population; papers use 0.05-0.1"
        ),
        "entangling_rate_hz": _P(
            39.0, "Hz", _HUMPHREYS, note="single-click, nodes 2 m apart (maximum reported)"
        ),
        "readout_fidelity_0": _P(
            0.95, "1", _POMPILI, "representative", "ms=0 readout, ~0.93-0.95 per node"
        ),
        "readout_fidelity_1": _P(0.995, "1", _POMPILI, "representative", "ms=1 readout"),
        "barrett_kok_success_probability": _P(6.4e-9, "1", _HENSEN, note="per attempt, 1.3 km"),
    },
    "ion-oxford": {
        "wavelength_nm": _P(422.0, "nm", _STEPHENSON, note="88Sr+ 5P1/2 -> 5S1/2 photons"),
        "remote_fidelity": _P(
            0.940, "1", _STEPHENSON, note="ion-ion entanglement, nodes 2 m apart"
        ),
        "entangling_rate_hz": _P(182.0, "Hz", _STEPHENSON),
        "success_probability": _P(2.18e-4, "1", _STEPHENSON, note="per attempt"),
        "attempt_rate_hz": _P(8.35e5, "Hz", _STEPHENSON, "derived", "rate / success probability"),
        "t1_s": _P(float("inf"), "s", _HARTY, "representative", "hyperfine memory qubit: T1 >> T2"),
        "t2_star_s": _P(50.0, "s", _HARTY, note="43Ca+ clock qubit"),
        "readout_fidelity": _P(0.9993, "1", _HARTY, note="state preparation and measurement"),
        "gate_error_2q": _P(1e-3, "1", _BALLANCE, note="43Ca+ two-qubit gate, fidelity 99.9%"),
    },
    "ensemble-rb": {
        "retrieval_efficiency": _P(
            0.76, "1", _YANG, note="intrinsic retrieval at zero delay, cold 87Rb"
        ),
        "lifetime_s": _P(0.22, "s", _YANG, note="1/e memory lifetime in an optical lattice"),
        "efficiency_shape": _P(
            0.0,
            "0=exponential, 1=gaussian",
            _YANG,
            "representative",
            "lattice-trapped: ~exponential; free cloud: Gaussian",
        ),
        "wavelength_nm": _P(795.0, "nm", _YANG, "representative", "Rb D1 line"),
    },
    "snspd": {
        "efficiency": _P(0.90, "1", _HADFIELD, "representative", "commercial SNSPD at 1550 nm"),
        "efficiency_best": _P(
            0.98, "1", _REDDY, note="record system detection efficiency at 1550 nm"
        ),
        "dark_count_rate_hz": _P(100.0, "Hz", _HADFIELD, "representative"),
        "dead_time_s": _P(
            50e-9, "s", _HADFIELD, "representative", "reset time; modelled as non-paralyzable"
        ),
        "jitter_fwhm_s": _P(50e-12, "s", _HADFIELD, "representative"),
        "afterpulse_probability": _P(
            0.0, "1", _HADFIELD, "representative", "SNSPDs do not afterpulse"
        ),
    },
    "spad": {
        "efficiency": _P(
            0.65,
            "1",
            _EXCELITAS,
            "representative",
            "Si SPAD photon detection efficiency near 650 nm",
        ),
        "dark_count_rate_hz": _P(
            100.0, "Hz", _EXCELITAS, "representative", "grade-dependent, 25-1500 Hz"
        ),
        "dead_time_s": _P(22e-9, "s", _EXCELITAS, note="actively quenched: non-paralyzable"),
        "jitter_fwhm_s": _P(350e-12, "s", _EXCELITAS),
        "afterpulse_probability": _P(0.005, "1", _EXCELITAS),
        "afterpulse_time_constant_s": _P(50e-9, "s", _EXCELITAS, "representative"),
    },
    "transducer-2022": {
        "efficiency": _P(0.087, "1", _SAHU, note="total bidirectional transduction efficiency"),
        "added_noise": _P(0.16, "photons", _SAHU, note="input-referred, microwave to optics"),
        "efficiency_high": _P(0.15, "1", _SAHU, note="at higher pump power"),
        "added_noise_high": _P(0.41, "photons", _SAHU, note="at higher pump power"),
        "bandwidth_hz": _P(
            10e6, "Hz", _SAHU, "representative", "order of the resonator linewidths"
        ),
    },
    "ocxo": {
        "white_fm_adev_1s": _P(1e-12, "1", _RILEY, "representative", "double-oven 10 MHz OCXO"),
        "random_walk_fm_adev_1s": _P(1e-14, "1", _RILEY, "representative"),
        "white_pm_s": _P(1e-12, "s", _RILEY, "representative", "output and distribution jitter"),
        "drift_per_s": _P(1e-10 / 86400.0, "1/s", _RILEY, "representative", "aging 1e-10 per day"),
    },
    "rubidium": {
        "white_fm_adev_1s": _P(2e-11, "1", _PRS10, note="ADEV at 1 s"),
        "drift_per_s": _P(
            5e-11 / (30 * 86400.0), "1/s", _PRS10, "derived", "aging 5e-11 per month"
        ),
        "random_walk_fm_adev_1s": _P(1e-15, "1", _RILEY, "representative"),
        "white_pm_s": _P(1e-12, "s", _RILEY, "representative"),
    },
    "smf28-1550": {
        "loss_db_per_km": _P(0.18, "dB/km", _CORNING, note="maximum attenuation at 1550 nm"),
        "group_index": _P(1.4682, "1", _CORNING, note="effective group index at 1550 nm"),
    },
    "fiber-637": {
        "loss_db_per_km": _P(
            8.0,
            "dB/km",
            "630HP-class single-mode fiber specifications",
            "representative",
            "visible-light single-mode fiber near 637 nm",
        ),
        "group_index": _P(
            1.475, "1", _MALITSON, "derived", "bulk fused silica at 637 nm from the Sellmeier fit"
        ),
    },
}

PROFILES: Mapping[str, Mapping[str, Param]] = MappingProxyType(
    {k: MappingProxyType(val) for k, val in _DATA.items()}
)
"""All profiles, read-only: ``PROFILES[name][parameter] -> Param``."""


def profile_names() -> list[str]:
    """Names of the available profiles."""
    return sorted(PROFILES)


def describe(name: str) -> Mapping[str, Param]:
    """Parameters of a profile with units and sources."""
    if name not in PROFILES:
        raise ParameterError(f"unknown profile {name!r}; available: {', '.join(profile_names())}")
    return PROFILES[name]


def profile(name: str) -> dict[str, float]:
    """Plain parameter values of a profile (for use as defaults)."""
    return {k: p.value for k, p in describe(name).items()}
