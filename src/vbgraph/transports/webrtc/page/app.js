// The vbgraph talk page: one WebRTC call to the graph that served this page.
//
// Talk: getUserMedia → RTCPeerConnection (audio both ways + the "events" data channel,
// created here so the offer always negotiates it) → wait for ICE gathering (no trickle)
// → POST offer → set the answer. The bot's audio plays in <audio id="remote">; a WebAudio
// AnalyserNode on the same stream measures its level. Server messages (JSON on the data
// channel, docs/protocols/webrtc.md) fill the transcript, latency and status.
//
// For tests, window.vbgraphStats holds what the page measured:
//   {rms, peak, framesReceived, transcripts: [{role, text}], latencies: [ms], events: [type],
//    state, sessionId}
"use strict";

(() => {
  const stats = {
    rms: 0, // level of the bot's audio over the last analyser window (0..1)
    peak: 0, // highest sample magnitude received since Talk (0..1)
    framesReceived: 0, // audio packets received (RTP stats; one per 20 ms frame)
    transcripts: [],
    latencies: [],
    events: [],
    state: "idle",
    sessionId: null,
  };
  window.vbgraphStats = stats;

  const $ = (id) => document.getElementById(id);
  const talkButton = $("talk");
  const interruptButton = $("interrupt");
  const hangupButton = $("hangup");
  const statusLine = $("status");
  const transcript = $("transcript");
  const latencyLine = $("latency");
  const levelBar = $("level");
  const remoteAudio = $("remote");

  // ?token=... on the page's URL is passed on to the signalling request.
  const token = new URLSearchParams(location.search).get("token");
  const offerUrl = token ? `offer?token=${encodeURIComponent(token)}` : "offer";

  let pc = null;
  let channel = null;
  let microphone = null;
  let audioContext = null;
  let timers = [];

  function setStatus(text) {
    statusLine.textContent = text;
  }

  function setState(state) {
    stats.state = state;
    const inCall = state === "connecting" || state === "connected";
    talkButton.disabled = inCall;
    hangupButton.disabled = !inCall;
    interruptButton.disabled = state !== "connected";
  }

  function addLine(kind, text, options = {}) {
    const item = document.createElement("li");
    item.className = kind + (options.interrupted ? " interrupted" : "");
    if (kind === "user" || kind === "bot") {
      const who = document.createElement("span");
      who.className = "who";
      who.textContent = kind === "user" ? "You:" : "Bot:";
      item.appendChild(who);
      stats.transcripts.push({ role: kind, text });
    }
    item.appendChild(document.createTextNode(text));
    transcript.appendChild(item);
    item.scrollIntoView({ block: "nearest" });
  }

  // -- server → page messages -------------------------------------------------------------

  const handlers = {
    session: (m) => {
      stats.sessionId = m.session_id;
      addLine("system", `Connected (session ${m.session_id}).`);
    },
    transcript: (m) => {
      if (m.final) addLine("user", m.text);
      else setStatus(`Hearing: ${m.text}`);
    },
    agent_reply: (m) => addLine("bot", m.text, { interrupted: m.interrupted }),
    user_speech_started: () => setStatus("Listening to you…"),
    user_speech_stopped: () => setStatus("Thinking…"),
    turn_ended: () => setStatus("Thinking…"),
    bot_speech_started: () => setStatus("The bot is speaking."),
    bot_speech_stopped: (m) => setStatus(m.interrupted ? "The bot was interrupted." : "Your turn."),
    interrupted: () => addLine("system", "Interrupted."),
    latency: (m) => {
      stats.latencies.push(m.ms);
      const detection = m.turn_detection_ms == null ? "" : ` (turn detection ${m.turn_detection_ms} ms)`;
      latencyLine.textContent = `Turn ${m.turn}: ${m.ms} ms${detection}`;
    },
    error: (m) => addLine("system error", `Error (${m.code}): ${m.message}`),
    session_ended: (m) => {
      addLine("system", `Call ended: ${m.reason}.`);
      hangUp(false);
    },
  };

  function onMessage(event) {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch (err) {
      console.warn("vbgraph: message is not JSON", event.data);
      return;
    }
    stats.events.push(message.type);
    const handle = handlers[message.type];
    if (handle) handle(message);
  }

  // -- the received audio's level ---------------------------------------------------------

  function meter(stream) {
    // Chrome feeds a remote WebRTC stream to WebAudio only while a media element plays
    // it too; the <audio> element does, so the analyser sees what the user hears.
    const source = audioContext.createMediaStreamSource(stream);
    const analyser = audioContext.createAnalyser();
    analyser.fftSize = 2048;
    source.connect(analyser);
    const samples = new Float32Array(analyser.fftSize);
    timers.push(
      setInterval(() => {
        analyser.getFloatTimeDomainData(samples);
        let sum = 0;
        let peak = 0;
        for (const x of samples) {
          sum += x * x;
          peak = Math.max(peak, Math.abs(x));
        }
        stats.rms = Math.sqrt(sum / samples.length);
        stats.peak = Math.max(stats.peak, peak);
        levelBar.style.width = `${Math.min(100, stats.rms * 400)}%`;
      }, 50),
    );
  }

  async function pollStats() {
    if (!pc) return;
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") stats.framesReceived = s.packetsReceived;
    });
  }

  // -- the call -----------------------------------------------------------------------------

  function gatheringComplete(peer, timeoutMs) {
    if (peer.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (peer.iceGatheringState === "complete") resolve();
      };
      peer.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, timeoutMs); // send what was gathered so far
    });
  }

  async function talk() {
    setState("connecting");
    stats.peak = 0;
    // Made in the click handler: a user gesture lets the audio start.
    audioContext = audioContext || new AudioContext();
    await audioContext.resume();
    setStatus("Asking for the microphone…");
    microphone = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    pc = new RTCPeerConnection({ iceServers: [] });
    channel = pc.createDataChannel("events");
    channel.onmessage = onMessage;
    channel.onclose = () => {
      if (pc) {
        addLine("system", "The server closed the call.");
        hangUp(false);
      }
    };
    for (const track of microphone.getAudioTracks()) pc.addTrack(track, microphone);
    pc.ontrack = (event) => {
      const stream = event.streams[0] || new MediaStream([event.track]);
      remoteAudio.srcObject = stream;
      remoteAudio.play().catch((err) => setStatus(`Cannot play the bot's audio: ${err.message}`));
      meter(stream);
    };
    pc.onconnectionstatechange = () => {
      const state = pc ? pc.connectionState : "closed";
      if (state === "connected") {
        setState("connected");
        setStatus("Connected: speak.");
      } else if (state === "failed") {
        addLine("system error", "The connection failed.");
        hangUp(false);
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    setStatus("Connecting…");
    await gatheringComplete(pc, 3000);
    const response = await fetch(offerUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        sdp: pc.localDescription.sdp,
        type: "offer",
        metadata: { page: location.pathname, user_agent: navigator.userAgent.slice(0, 200) },
      }),
    });
    const body = await response.json();
    if (!response.ok) {
      const error = body.error || { code: response.status, message: response.statusText };
      throw new Error(`${error.message} (${error.code})`);
    }
    await pc.setRemoteDescription({ type: "answer", sdp: body.sdp });
    timers.push(setInterval(pollStats, 250));
  }

  function hangUp(tellServer) {
    if (tellServer && channel && channel.readyState === "open") {
      // The server ends the session and closes the connection; session_ended follows.
      channel.send(JSON.stringify({ type: "end" }));
      setStatus("Hanging up…");
      return;
    }
    for (const timer of timers) clearInterval(timer);
    timers = [];
    if (pc) pc.close();
    if (microphone) for (const track of microphone.getTracks()) track.stop();
    pc = null;
    channel = null;
    microphone = null;
    stats.rms = 0;
    levelBar.style.width = "0";
    setState("ended");
    setStatus("Call ended. Press Talk to call again.");
  }

  talkButton.addEventListener("click", () => {
    talk().catch((err) => {
      addLine("system error", `Could not start the call: ${err.message}`);
      hangUp(false);
    });
  });
  hangupButton.addEventListener("click", () => hangUp(true));
  interruptButton.addEventListener("click", () => {
    if (channel && channel.readyState === "open") channel.send(JSON.stringify({ type: "interrupt" }));
  });
})();
