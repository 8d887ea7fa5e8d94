"""Everything that touches hardware: each device an interface, a real driver, a simulator."""
