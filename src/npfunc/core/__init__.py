"""The engine's core: primitives, the interpreter stack, traced values, zeros, errors."""
