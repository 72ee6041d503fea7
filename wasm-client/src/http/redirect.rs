//! Following one redirect: the next request as browsers build it (RFC 9110 §15.4 and the Fetch
//! standard): 303, and 301/302 after a POST, become a body-less GET; credentials never travel
//! to another origin.

use super::request::Request;
use super::url::HttpUrl;

/// Headers that carry credentials; dropped when a redirect leaves the origin.
const CREDENTIALS: [&str; 3] = ["authorization", "cookie", "proxy-authorization"];

/// Turns `request` into the one a `status` redirect to `next` asks for.
pub fn follow(request: &mut Request, status: u16, next: HttpUrl) {
    if status == 303 || (matches!(status, 301 | 302) && request.method == "POST") {
        request.method = "GET".into();
        request.body.clear();
        request.headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-type"));
    }
    if !request.url.same_origin(&next) {
        request.headers.retain(|(name, _)| !CREDENTIALS.iter().any(|c| c.eq_ignore_ascii_case(name)));
    }
    request.url = next;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, url: &str) -> Request {
        let mut request = Request::new(method, HttpUrl::parse(url).unwrap());
        request.headers = vec![
            ("Authorization".into(), "Basic c2VjcmV0".into()),
            ("Cookie".into(), "session=1".into()),
            ("Content-Type".into(), "application/x-www-form-urlencoded".into()),
            ("X-Other".into(), "kept".into()),
        ];
        request.body = b"a=1".to_vec();
        request
    }

    fn names(request: &Request) -> Vec<&str> {
        request.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn credentials_stay_behind_when_a_redirect_leaves_for_another_host() {
        let mut r = request("GET", "http://192.168.0.10/login");
        follow(&mut r, 302, HttpUrl::parse("http://192.168.0.20/").unwrap());
        assert_eq!(names(&r), ["Content-Type", "X-Other"]);
        assert_eq!(r.url.host, "192.168.0.20");
    }

    #[test]
    fn credentials_stay_behind_on_another_port_of_the_same_host() {
        let mut r = request("GET", "http://192.168.0.10/");
        follow(&mut r, 307, HttpUrl::parse("http://192.168.0.10:8080/").unwrap());
        assert!(!names(&r).contains(&"Authorization") && !names(&r).contains(&"Cookie"), "{:?}", names(&r));
    }

    #[test]
    fn a_redirect_within_the_origin_keeps_credentials_and_a_307_keeps_the_post() {
        let mut r = request("POST", "http://192.168.0.10/form");
        follow(&mut r, 307, HttpUrl::parse("http://192.168.0.10/form2").unwrap());
        assert_eq!(r.method, "POST");
        assert_eq!(r.body, b"a=1");
        assert_eq!(names(&r), ["Authorization", "Cookie", "Content-Type", "X-Other"]);
    }

    #[test]
    fn a_303_or_a_302_after_a_post_becomes_a_bodyless_get() {
        for status in [303, 302, 301] {
            let mut r = request("POST", "http://192.168.0.10/form");
            follow(&mut r, status, HttpUrl::parse("http://192.168.0.10/done").unwrap());
            assert_eq!((r.method.as_str(), r.body.len()), ("GET", 0), "status {status}");
            assert!(!names(&r).contains(&"Content-Type"));
        }
    }
}
