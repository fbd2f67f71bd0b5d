//! The real app under Xvfb, driven through tauri-driver and WebKitWebDriver, against the
//! real devserver and the real Secret Service: sign-in, the sessions list, "remember me"
//! across a restart, sign-out.
//!
//! Needs `DISPLAY`, `tauri-driver` on PATH and a Secret Service (scripts/test.sh).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use estrade_devserver::{Config, seed};
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const LIVE_TITLE: &str = "Séance 3 : Qualité et cycle de vie des données";

struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    /// Starts tauri-driver; `password` reaches the app through its environment.
    async fn start(home: &std::path::Path, password: Option<&str>) -> Self {
        let (port, native) = (free_port(), free_port());
        let mut cmd = Command::new("tauri-driver");
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        match password {
            Some(p) => cmd.env("ESTRADE_PASSWORD", p),
            None => cmd.env_remove("ESTRADE_PASSWORD"),
        };
        let child = cmd
            .spawn()
            .expect("tauri-driver on PATH (scripts/setup.sh installs it)");
        let driver = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while driver
            .http
            .get(format!("{}/status", driver.url))
            .send()
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "tauri-driver did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    async fn session(&self, args: &[&str]) -> Session<'_> {
        let caps = json!({ "capabilities": { "alwaysMatch": { "tauri:options": {
            "application": env!("CARGO_BIN_EXE_estrade"),
            "args": args,
        }}}});
        let r: Value = self
            .http
            .post(format!("{}/session", self.url))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Session { driver: self, id }
    }
}

struct Session<'a> {
    driver: &'a Driver,
    id: String,
}

impl Session<'_> {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.driver.url, self.id);
        let mut req = self.driver.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn script(&self, js: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
        .await
    }

    /// Polls until `js` returns a truthy value (or fails after 30 s with `what`).
    async fn wait_for(&self, what: &str, js: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.script(js).await;
            if !(v.is_null() || v == json!(false) || v == json!("") || v.get("error").is_some()) {
                return v;
            }
            if Instant::now() > deadline {
                let body = self
                    .script("return document.body ? document.body.innerText : ''")
                    .await;
                panic!("timed out waiting for {what}; page text: {body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn titles(&self) -> Vec<String> {
        let v = self
            .wait_for(
                "the sessions list",
                "const t = [...document.querySelectorAll('[data-testid=session-title]')].map(e => e.textContent);
                 return t.length ? JSON.stringify(t) : null",
            )
            .await;
        serde_json::from_str(v.as_str().unwrap()).unwrap()
    }

    async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        // The DOM changes before the next paint: wait two frames so the picture shows it.
        self.cmd(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({
                "script": "const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
                "args": []
            })),
        )
        .await;
        let b64 = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 screenshot"))
            .unwrap();
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 10_000,
            "a real picture, {} bytes",
            png.len()
        );
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
        std::fs::write(&path, png).unwrap();
        path
    }

    async fn close(self) {
        self.cmd(reqwest::Method::DELETE, "", None).await;
    }
}

#[tokio::test]
#[ignore = "needs a display, tauri-driver and a Secret Service: scripts/test.sh"]
async fn sign_in_list_sessions_remember_and_sign_out() {
    assert!(
        std::env::var_os("DISPLAY").is_some(),
        "DISPLAY must be set (Xvfb)"
    );
    let devserver = estrade_devserver::spawn(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    })
    .await
    .unwrap();
    let backend_url = devserver.url();
    let home = tempfile::tempdir().unwrap();

    // 1. Launched signed in as the demo trainer (the demo's path): the sessions list shows.
    {
        let driver = Driver::start(home.path(), Some(seed::DEMO_PASSWORD)).await;
        let s = driver
            .session(&[
                "--backend-url",
                &backend_url,
                "--email",
                seed::DEMO_TRAINER_EMAIL,
            ])
            .await;
        let titles = s.titles().await;
        assert!(titles.contains(&LIVE_TITLE.to_owned()), "{titles:?}");
        assert_eq!(titles.len(), 5);
        let who = s
            .script("return document.querySelector('[data-testid=signed-in-as]').textContent")
            .await;
        assert_eq!(who, "Connecté en tant que Claire Martin");
        let live = s
            .script("return document.querySelector('[data-status=live] .badge').textContent")
            .await;
        assert_eq!(live, "En direct");
        let lang = s.script("return document.documentElement.lang").await;
        assert_eq!(lang, "fr");
        let shot = s.screenshot("sessions.png").await;
        eprintln!("screenshot: {}", shot.display());
        s.close().await;
    }

    // 2. Restarted without credentials: the keychain signs the trainer back in.
    {
        let driver = Driver::start(home.path(), None).await;
        let s = driver.session(&[]).await;
        assert!(s.titles().await.contains(&LIVE_TITLE.to_owned()));
        // 3. Sign out: back to the form, email kept as a hint, token gone.
        s.click("[data-testid=sign-out]").await;
        s.wait_for(
            "the sign-in form",
            "return document.querySelector('[data-testid=sign-in-form]') !== null",
        )
        .await;
        let email = s
            .script("return document.querySelector('input[name=email]').value")
            .await;
        assert_eq!(email, seed::DEMO_TRAINER_EMAIL);
        s.close().await;
    }

    // 4. Restarted again: nothing remembered, so the form; a student signs in through it,
    //    wrong password first.
    {
        let driver = Driver::start(home.path(), None).await;
        let s = driver.session(&[]).await;
        s.wait_for(
            "the sign-in form",
            "return document.querySelector('[data-testid=sign-in-form]') !== null",
        )
        .await;
        s.type_into("input[name=backend]", &backend_url).await;
        s.type_into("input[name=email]", "nadia.roux@estrade.example")
            .await;
        s.type_into("input[name=password]", "wrong").await;
        s.click("button[type=submit]").await;
        let code = s
            .wait_for("the error", "const e = document.querySelector('[data-testid=error]'); return e && e.dataset.code")
            .await;
        assert_eq!(code, "invalid_credentials");
        s.type_into("input[name=password]", seed::DEMO_PASSWORD)
            .await;
        s.click("button[type=submit]").await;
        let mut titles = s.titles().await;
        titles.sort();
        assert_eq!(
            titles,
            vec![
                "Atelier : analyse de risques",
                "Révision : contrôle d'accès"
            ]
        );
        s.close().await;
    }
    devserver.shutdown().await;
}
