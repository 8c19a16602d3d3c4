fn main() {
    std::process::exit(totofs::cli::main());
}
