"""The kiosk-side uploader and the township server."""
