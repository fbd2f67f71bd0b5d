//! cameras: next
