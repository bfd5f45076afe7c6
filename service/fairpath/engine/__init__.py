"""durable_rules behind one small interface: the compiler and the wrapped engine."""
