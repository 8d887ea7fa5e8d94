"""Health codes and resident passes: signed tokens (HC1, as the EU DCC) verified offline."""
from .claims import ForeignCertificate, HealthCode, ResidentPass
from .revocation import RevocationList
from .trust import TrustList, TrustListError
from .verify import Policy, Reason, Verifier, VerifyResult, reason_text, verify

__all__ = ["ForeignCertificate", "HealthCode", "Policy", "Reason", "ResidentPass",
           "RevocationList", "TrustList", "TrustListError", "Verifier", "VerifyResult",
           "reason_text", "verify"]
