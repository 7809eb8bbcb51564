//! `backend`: see [`weaprous_apps::cmd::backend`].

fn main() {
    weaprous_apps::cmd::backend::main_with(std::env::args_os());
}
