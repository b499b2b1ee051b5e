"""qnhw emulators: numpy physics core and emulated device endpoints."""
