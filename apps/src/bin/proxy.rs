//! `proxy`: see [`weaprous_apps::cmd::proxy`].

fn main() {
    weaprous_apps::cmd::proxy::main_with(std::env::args_os());
}
