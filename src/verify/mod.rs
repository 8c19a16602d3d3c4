//! Supply-chain verification against a layout (in-toto 3.x `in_toto_verify`).
