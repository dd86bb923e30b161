mod common;
use common::*;

#[tokio::test]
async fn root_redirects_to_setup_then_login() {
    let s = TestServer::start(Options::default()).await;
    let c = client();
    let r = c.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/setup");
    s.add_user("alice", "admin");
    let r = c.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(r.headers()["location"], "/login");
    let c = login(&s, "alice", PASSWORD).await;
    let r = c.get(format!("{}/", s.url)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}
