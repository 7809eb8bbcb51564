//! `sampleapp`: see [`weaprous_apps::cmd::sampleapp`].

fn main() {
    weaprous_apps::cmd::sampleapp::main_with(std::env::args_os());
}
