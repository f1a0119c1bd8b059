//! Lithium (ML-DSA-44) keys and signatures. Placeholder being replaced.
