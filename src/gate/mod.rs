//! Gate output parsing (owned by the gate helper).
