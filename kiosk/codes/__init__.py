"""Health codes and resident passes: signed tokens (HC1, as the EU DCC) verified offline."""
from .claims import ForeignCertificate, HealthCode, ResidentPass
from .revocation import RevocationList
from .trust import TrustList, TrustListError
from .verify import Reason, Verifier, VerifyOptions, VerifyResult, reason_text, verify

__all__ = ["ForeignCertificate", "HealthCode", "Reason", "ResidentPass",
           "RevocationList", "TrustList", "TrustListError", "Verifier", "VerifyOptions", "VerifyResult",
           "reason_text", "verify"]
