"""The township server's routes: `gate` (signed by the gates' device keys) and `admin`
(the administrator token)."""
