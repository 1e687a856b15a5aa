//! Service-level tests: recovery across restarts and disk errors.
