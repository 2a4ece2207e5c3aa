"""The lab world: a small, complete text-to-image world that ships inside ttscale and runs offline on a CPU."""
