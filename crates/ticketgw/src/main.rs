fn main() -> std::process::ExitCode {
    ticketgw::cli::main()
}
