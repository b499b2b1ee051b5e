"""Emulated devices: one per device contract, a DeviceServer handler on the physics core."""
