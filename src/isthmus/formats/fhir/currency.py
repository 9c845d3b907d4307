"""ISO 4217 currency codes and their minor units, for FHIR Money.currency.

FHIR R4 4.0.1 Money (https://hl7.org/fhir/R4/datatypes.html#Money) binds ``currency`` to
the Currencies value set, ISO 4217 (https://hl7.org/fhir/R4/valueset-currencies.html).
The minor unit is how many decimals an amount may carry (USD 2, JPY 0, KWD 3), from the
ISO 4217 list one (current currencies and funds); codes with no minor unit (gold, SDR,
test codes) accept any precision.
"""

from __future__ import annotations

from typing import Final

_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP "
    "BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW "
    "KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN "
    "NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD "
    "SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU "
    "UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL"
)
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_THREE = "BHD IQD JOD KWD LYD OMR TND"
_FOUR = "CLF UYW"
_NONE = "XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX"

#: ISO 4217 code -> number of decimals an amount may have (None: not applicable).
MINOR_UNITS: Final[dict[str, int | None]] = {
    **{c: 2 for c in _TWO.split()},
    **{c: 0 for c in _ZERO.split()},
    **{c: 3 for c in _THREE.split()},
    **{c: 4 for c in _FOUR.split()},
    **{c: None for c in _NONE.split()},
}


def is_iso4217(code: str) -> bool:
    """True for a current ISO 4217 alphabetic code (upper case, as FHIR requires)."""
    return code in MINOR_UNITS
