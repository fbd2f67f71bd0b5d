import "./app.css";

import { mount } from "svelte";

import App from "./App.svelte";
import { TauriBackend } from "./lib/ipc/tauri";

const target = document.getElementById("app");
if (!target) throw new Error("#app is missing from index.html");

export default mount(App, { target, props: { backend: new TauriBackend() } });
