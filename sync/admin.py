"""A small client for the township's administrator endpoints (CLI, tests, demo)."""
from __future__ import annotations

from typing import Any

import httpx


class AdminError(Exception):
    pass


class Admin:
    def __init__(self, server: str, token: str, timeout_s: float = 30.0):
        self.http = httpx.Client(base_url=server.rstrip("/"), timeout=timeout_s,
                                 headers={"Authorization": f"Bearer {token}"})

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kw) -> Any:
        return self._checked(self.http.request(method, path, **kw)).json()

    @staticmethod
    def _checked(r: httpx.Response) -> httpx.Response:
        if r.status_code >= 400:
            try:
                d = r.json()
                raise AdminError(f"{r.status_code} {d.get('error')}: {d.get('detail')}")
            except ValueError:
                raise AdminError(f"{r.status_code} {r.text[:200]}") from None
        return r

    def enrollment(self, community: str, gate: str, device_id: str | None = None,
                   ttl_hours: float = 24) -> dict:
        body = {"community": community, "gate": gate, "ttl_hours": ttl_hours}
        if device_id:
            body["device_id"] = device_id
        return self._call("POST", "/v1/admin/enrollments", json=body)

    def set_policy(self, community: str, **policy: Any) -> dict:
        return self._call("PUT", f"/v1/admin/communities/{community}/policy", json=policy)

    def put_list(self, community: str, name: str, rows: list[dict]) -> dict:
        return self._call("PUT", f"/v1/admin/communities/{community}/lists/{name}", json={"rows": rows})

    def devices(self) -> list[dict]:
        return self._call("GET", "/v1/admin/devices")["devices"]

    def revoke(self, device_id: str) -> dict:
        return self._call("POST", f"/v1/admin/devices/{device_id}/revoke")

    def daily_report(self, day: str | None = None, tz: str | None = None, community: str | None = None) -> dict:
        params = {k: v for k, v in (("day", day), ("tz", tz), ("community", community)) if v}
        return self._call("GET", "/v1/admin/reports/daily", params=params)

    def report_file(self, fmt: str, day: str | None = None, tz: str | None = None,
                    community: str | None = None, lang: str = "zh") -> bytes:
        """The daily report as CSV or XLSX bytes."""
        params = {k: v for k, v in (("day", day), ("tz", tz), ("community", community)) if v}
        return self._checked(self.http.get("/v1/admin/reports/daily",
                                           params={**params, "format": fmt, "lang": lang})).content

    def submit_report(self, community: str, day: str, leader: str, note: str | None = None,
                      tz: str | None = None) -> dict:
        return self._call("POST", f"/v1/admin/reports/daily/{community}/submission",
                          params={"tz": tz} if tz else {}, json={"day": day, "leader": leader, "note": note})

    def alarms(self, after: int = 0, limit: int = 100, open_only: bool = False) -> dict:
        return self._call("GET", "/v1/admin/alarms", params={"after": after, "limit": limit,
                                                            "open": str(open_only).lower()})

    def acknowledge(self, alarm_id: int, note: str | None = None) -> dict:
        return self._call("POST", f"/v1/admin/alarms/{alarm_id}/acknowledge", json={"note": note})

    def trace(self, community: str, start: str, end: str, gate: str | None = None, after: int = 0) -> dict:
        params = {"community": community, "start": start, "end": end, "after": after}
        return self._call("GET", "/v1/admin/trace", params={**params, **({"gate": gate} if gate else {})})

    def users(self) -> list[dict]:
        return self._call("GET", "/v1/admin/users")["users"]

    def add_user(self, username: str, password: str, role: str, community: str | None = None) -> dict:
        body = {"username": username, "password": password, "role": role}
        if community:
            body["community"] = community
        return self._call("POST", "/v1/admin/users", json=body)

    def disable_user(self, username: str) -> dict:
        return self._call("POST", f"/v1/admin/users/{username}/disable")

    def enable_user(self, username: str) -> dict:
        return self._call("POST", f"/v1/admin/users/{username}/enable")

    def set_password(self, username: str, password: str) -> dict:
        return self._call("PUT", f"/v1/admin/users/{username}/password", json={"password": password})

    def audit(self, before: int | None = None, limit: int = 100, community: str | None = None) -> dict:
        params: dict[str, Any] = {"limit": limit}
        if before:
            params["before"] = before
        if community:
            params["community"] = community
        return self._call("GET", "/v1/admin/audit", params=params)

    def entries(self, device_id: str | None = None) -> list[dict]:
        """Every entry, paging through the export."""
        out: list[dict] = []
        after = 0
        while True:
            params: dict[str, Any] = {"after_seq": after, "limit": 10000}
            if device_id:
                params["device_id"] = device_id
            page = self._call("GET", "/v1/admin/entries", params=params)["entries"]
            out.extend(page)
            if len(page) < 10000 or not device_id:
                return out
            after = page[-1]["seq"]
