//! Crash points for the crash tests: with the test-only `failpoints` feature, a point named in the
//! `FAILPOINTS` environment variable (the `fail` crate's syntax, e.g. `payments.webhook.recorded=return`
//! or `1*return` for the first pass only) kills the process with SIGKILL right there, as `kill -9`
//! would. Without the feature [`crash_point`] is empty and costs nothing.

/// Read `FAILPOINTS`; keep the guard for the life of the process.
#[cfg(feature = "failpoints")]
pub fn setup() -> Option<fail::FailScenario<'static>> {
    std::env::var_os("FAILPOINTS").map(|_| fail::FailScenario::setup())
}

#[cfg(not(feature = "failpoints"))]
pub fn setup() -> Option<()> {
    None
}

/// Die here when the crash tests ask for it (see the module docs).
#[inline(always)]
pub fn crash_point(name: &str) {
    #[cfg(feature = "failpoints")]
    if fail::eval(name, |_| ()).is_some() {
        eprintln!("failpoint {name}: killing the process");
        // SAFETY: sending a signal to ourselves has no memory-safety preconditions.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(feature = "failpoints"))]
    let _ = name;
}
