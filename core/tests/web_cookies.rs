//! Cookies (RFC 6265): the server's `Cookie` reading and `Set-Cookie` writing, the cookie-date
//! of §5.1.1, and the user agent's jar (§5.2-5.4).

use proptest::prelude::*;
use weaprous_core::time::UnixTime;
use weaprous_core::web::cookie::{cookie, parse_cookie_header, SameSite, SetCookie};
use weaprous_core::web::cookie_date;
use weaprous_core::web::jar::Jar;
use weaprous_core::web::url::Url;

#[test]
fn the_cookie_field_is_read_leniently() {
    assert_eq!(
        parse_cookie_header("a=1; b=2;c=3 ;  d = \"4\"; flag; =x; e="),
        vec![("a", "1"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "")]
    );
    assert_eq!(cookie("sid=abc; theme=dark", "theme"), Some("dark"));
    assert_eq!(cookie("sid=abc; sid=old", "sid"), Some("abc"), "first wins");
    assert_eq!(cookie("auth=true", "sid"), None);
    assert_eq!(cookie("", "sid"), None);
}

#[test]
fn set_cookie_is_written_with_every_attribute() {
    let mut c = SetCookie::new("sid", "Zm9v-bar_1").unwrap();
    c.path = Some("/".into());
    c.max_age = Some(3600);
    c.expires = Some(UnixTime(784111777));
    c.http_only = true;
    c.secure = true;
    c.same_site = Some(SameSite::Lax);
    assert_eq!(
        c.to_string(),
        "sid=Zm9v-bar_1; Path=/; Max-Age=3600; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Secure; HttpOnly; SameSite=Lax"
    );
    assert_eq!(
        SetCookie::removal("sid", "/").unwrap().to_string(),
        "sid=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    );
}

#[test]
fn set_cookie_refuses_what_a_browser_could_read_differently() {
    assert!(SetCookie::new("", "v").is_none(), "empty name");
    assert!(SetCookie::new("a b", "v").is_none(), "space in the name");
    assert!(SetCookie::new("a=b", "v").is_none(), "= in the name");
    assert!(SetCookie::new("a", "x;y").is_none(), "; in the value");
    assert!(SetCookie::new("a", "x y").is_none(), "space in the value");
    assert!(
        SetCookie::new("a", "\"q\"").is_none(),
        "DQUOTE in the value"
    );
    assert!(SetCookie::new("a", "x,y").is_none(), "comma in the value");
    assert!(
        SetCookie::new("a", "x\\y").is_none(),
        "backslash in the value"
    );
    assert!(SetCookie::new("a", "é").is_none(), "non-ASCII in the value");
    assert!(SetCookie::new("a", "").is_some(), "an empty value is fine");
}

#[test]
fn cookie_dates_in_every_shape_servers_write() {
    let t = |s: &str| cookie_date::parse(s).map(|t| t.0);
    assert_eq!(t("Wed, 09 Jun 2021 10:18:14 GMT"), Some(1623233894));
    assert_eq!(t("Wed, 09-Jun-2021 10:18:14 GMT"), Some(1623233894));
    assert_eq!(t("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784111777));
    assert_eq!(t("Sunday, 06-Nov-94 08:49:37 GMT"), Some(784111777));
    assert_eq!(t("Sun Nov  6 08:49:37 1994"), Some(784111777), "asctime");
    assert_eq!(
        t("6 november 1994 8:49:37"),
        Some(784111777),
        "long month, short hour"
    );
    assert_eq!(t("Thursday, 01-Jan-70 00:00:01 GMT"), Some(1), "70 is 1970");
    assert_eq!(t("01 Jan 69 00:00:00"), Some(3124224000), "69 is 2069");
    assert_eq!(t("29 Feb 2000 12:00:00"), Some(951825600), "a leap day");
    assert_eq!(
        t("01 Jan 1601 00:00:00"),
        Some(0),
        "before 1970: already expired"
    );
}

#[test]
fn cookie_dates_that_name_no_time_fail() {
    for bad in [
        "",
        "Wed, 09 Jun 2021",      // no time
        "09 Jun 2021 24:00:00",  // hour
        "09 Jun 2021 10:60:00",  // minute
        "09 Jun 2021 10:00:60",  // second
        "30 Feb 2021 10:00:00",  // no such day
        "31 Apr 2021 10:00:00",  // no such day
        "29 Feb 2021 10:00:00",  // not a leap year
        "00 Jun 2021 10:00:00",  // day 0
        "09 Jun 1600 10:00:00",  // before 1601
        "09 Foo 2021 10:00:00",  // no month
        "Jun 2021 10:00:00",     // no day (2021 is no day: three digits or more)
        "09 Jun 10:00:00",       // no year
        "09 Jun 2021 100:00:00", // three-digit hour is no time
    ] {
        assert_eq!(cookie_date::parse(bad), None, "{bad:?}");
    }
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap_or_else(|| panic!("{s}"))
}

const NOW: UnixTime = UnixTime(1796631000);

#[test]
fn a_jar_sends_back_what_it_was_given() {
    let mut jar = Jar::new();
    assert!(jar.set(
        NOW,
        &url("http://localhost:8080/login"),
        "sid=abc; Path=/; HttpOnly"
    ));
    assert!(jar.set(NOW, &url("http://localhost:8080/login"), "theme=dark"));
    // Host-only, default path "/" (the request path has one slash).
    assert_eq!(
        jar.header(NOW, &url("http://localhost:8080/")),
        "sid=abc; theme=dark"
    );
    assert_eq!(
        jar.header(NOW, &url("http://localhost:9000/x")),
        "sid=abc; theme=dark",
        "ports do not matter"
    );
    assert_eq!(
        jar.header(NOW, &url("http://127.0.0.1:8080/")),
        "",
        "another host"
    );
    assert_eq!(
        jar.header(NOW, &url("http://sub.localhost/")),
        "",
        "host-only"
    );
    assert!(jar.is_http_only("sid"));
    assert!(!jar.is_http_only("theme"));
}

#[test]
fn a_jar_ignores_what_section_5_2_says_to_ignore() {
    let mut jar = Jar::new();
    let u = url("http://a.example/");
    assert!(!jar.set(NOW, &u, "novalue"), "no =");
    assert!(!jar.set(NOW, &u, "=v"), "empty name");
    assert!(
        !jar.set(NOW, &u, "x=1; Domain=b.example"),
        "a domain the host is not in"
    );
    assert!(!jar.set(NOW, &u, "x=1; Domain=ple"), "a partial label");
    assert!(jar.set(
        NOW,
        &u,
        "y=2; Expires=garbage; Max-Age=12x; Foo=bar; SameSite=Lax"
    ));
    assert_eq!(
        jar.header(NOW, &u),
        "y=2",
        "unreadable attributes are skipped, not fatal"
    );
}

#[test]
fn domain_cookies_reach_subdomains_and_ip_hosts_only_themselves() {
    let mut jar = Jar::new();
    assert!(jar.set(NOW, &url("http://www.a.example/"), "d=1; Domain=.A.example"));
    assert_eq!(jar.header(NOW, &url("http://a.example/")), "d=1");
    assert_eq!(jar.header(NOW, &url("http://x.y.a.example/")), "d=1");
    assert_eq!(
        jar.header(NOW, &url("http://ba.example/")),
        "",
        "not a label boundary"
    );
    // No public-suffix list (the jar's stated decision): a parent domain is taken as given.
    let mut jar = Jar::new();
    assert!(jar.set(NOW, &url("http://a.example/"), "p=1; Domain=example"));
    assert_eq!(jar.header(NOW, &url("http://b.example/")), "p=1");
    let mut jar = Jar::new();
    assert!(jar.set(NOW, &url("http://10.0.0.1/"), "i=1; Domain=10.0.0.1"));
    assert!(!jar.set(NOW, &url("http://10.0.0.1/"), "j=1; Domain=0.0.1"));
    assert_eq!(jar.header(NOW, &url("http://10.0.0.1/")), "i=1");
}

#[test]
fn paths_match_on_segment_boundaries_and_longer_paths_go_first() {
    let mut jar = Jar::new();
    let u = url("http://h/channel/general/messages");
    assert!(jar.set(NOW, &u, "a=root; Path=/"));
    assert!(jar.set(NOW, &u, "b=dflt"), "default path: /channel/general");
    assert!(jar.set(NOW, &u, "c=chan; Path=/channel"));
    assert!(
        jar.set(NOW, &u, "d=rel; Path=relative"),
        "not absolute: the default path"
    );
    assert_eq!(
        jar.header(NOW, &url("http://h/channel/general/x")),
        "b=dflt; d=rel; c=chan; a=root",
        "longest path first, then oldest first"
    );
    assert_eq!(jar.header(NOW, &url("http://h/channel")), "c=chan; a=root");
    assert_eq!(
        jar.header(NOW, &url("http://h/channels")),
        "a=root",
        "/channel is no prefix segment of /channels"
    );
    assert_eq!(
        jar.header(NOW, &url("http://h/channel/general")),
        "b=dflt; d=rel; c=chan; a=root"
    );
}

#[test]
fn expiry_max_age_over_expires_and_replacement_keeps_the_creation_order() {
    let mut jar = Jar::new();
    let u = url("http://h/");
    assert!(jar.set(
        NOW,
        &u,
        "a=1; Max-Age=10; Expires=Thu, 01 Jan 1970 00:00:01 GMT"
    ));
    assert!(jar.set(NOW, &u, "b=1; Expires=Thu, 01 Jan 1970 00:00:01 GMT"));
    assert!(jar.set(NOW, &u, "c=1"));
    assert_eq!(
        jar.header(NOW, &u),
        "a=1; c=1",
        "Max-Age wins; a past Expires evicts"
    );
    let later = UnixTime(NOW.0 + 10);
    assert_eq!(jar.header(later, &u), "c=1", "expired at its Max-Age");
    // Replacing a cookie keeps its place (its creation time).
    assert!(jar.set(NOW, &u, "d=1"));
    assert!(jar.set(NOW, &u, "c=2"));
    assert_eq!(jar.header(NOW, &u), "c=2; d=1");
    // Max-Age=0 deletes.
    assert!(jar.set(NOW, &u, "c=; Max-Age=0"));
    assert_eq!(jar.header(NOW, &u), "d=1");
    assert_eq!(jar.len(), 1);
}

#[test]
fn secure_cookies_only_over_https() {
    let mut jar = Jar::new();
    assert!(jar.set(NOW, &url("https://h/"), "s=1; Secure"));
    assert_eq!(jar.header(NOW, &url("http://h/")), "");
    assert_eq!(jar.header(NOW, &url("https://h/")), "s=1");
}

#[test]
fn urls_give_host_port_path_and_query() {
    let u = url("HTTP://User:pw@Example.COM:8080/a/b?x=1#frag");
    assert_eq!(
        (
            u.scheme.as_str(),
            u.host.as_str(),
            u.port,
            u.path.as_str(),
            u.query.as_deref()
        ),
        ("http", "example.com", 8080, "/a/b", Some("x=1"))
    );
    assert_eq!(u.target(), "/a/b?x=1");
    let u = url("https://[::1]/");
    assert_eq!(
        (u.host.as_str(), u.port, u.host_is_ip()),
        ("[::1]", 443, true)
    );
    assert_eq!(url("http://h?q").path, "/");
    assert!(Url::parse("ftp://h/").is_none());
    assert!(Url::parse("http:///x").is_none());
    assert!(Url::parse("http://h:99999/").is_none());
}

proptest! {
    /// Whatever a server writes with `SetCookie`, the jar reads back as the same pair.
    #[test]
    fn what_set_cookie_writes_the_jar_reads_back(
        name in "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}",
        value in "[!#-+--:<-\\[\\]-~]{0,40}",
        max_age in 1i64..1_000_000,
    ) {
        let mut c = SetCookie::new(&name, &value).expect("valid by construction");
        c.path = Some("/".into());
        c.max_age = Some(max_age);
        c.http_only = true;
        let mut jar = Jar::new();
        prop_assert!(jar.set(NOW, &url("http://h/x"), &c.to_string()));
        prop_assert_eq!(jar.header(NOW, &url("http://h/y")), format!("{name}={value}"));
        let field = format!("{name}={value}");
        prop_assert_eq!(parse_cookie_header(&field), vec![(name.as_str(), value.as_str())]);
    }

    /// Neither the date parser nor the jar panics on any input.
    #[test]
    fn no_input_panics_the_jar(s in ".{0,80}", path in "/[a-z/]{0,10}") {
        let _ = cookie_date::parse(&s);
        let mut jar = Jar::new();
        let u = url(&format!("http://h{path}"));
        jar.set(NOW, &u, &s);
        let _ = jar.header(NOW, &u);
    }
}

proptest! {
    /// Whatever a.example sets, nothing goes to b.other, a site it shares no domain with (the
    /// fuzz target's property; `Domain=example` would reach b.example: no public-suffix list).
    #[test]
    fn cookies_never_cross_to_another_site(lines in proptest::collection::vec("[a-zA-Z0-9=;. /-]{0,40}", 0..6)) {
        let mut jar = Jar::new();
        let here = url("http://a.example/x/y");
        for l in &lines {
            jar.set(NOW, &here, l);
        }
        prop_assert_eq!(jar.header(NOW, &url("http://b.other/")), "");
    }
}
