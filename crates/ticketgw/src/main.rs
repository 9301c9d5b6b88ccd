/// mimalloc gives freed memory back to the system; glibc's malloc kept every 19 MiB argon2 buffer of a
/// burst of logins (gigabytes) long after it ended (see README, "Password hashing memory").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ticketgw::cli::main()
}
