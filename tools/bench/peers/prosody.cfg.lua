-- Benchmark configuration for Prosody 0.12; tools/bench/compare replaces the /tmp/peers paths
-- and the port (run: prosody --config FILE -F)
run_as_root = true            -- we run as root in the container; otherwise prosody setuid()s to user 'prosody'
data_path = "/tmp/peers/pros/data"
pidfile = "/tmp/peers/pros/prosody.pid"
plugin_paths = {}
log = { warn = "*console"; }  -- or { info = "/tmp/peers/pros/prosody.log" }
network_backend = "epoll"
interfaces = { "127.0.0.1" }
c2s_ports = { 5242 }
c2s_direct_tls_ports = {}
s2s_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}
c2s_require_encryption = false
allow_unencrypted_plain_auth = false
c2s_stanza_size_limit = 10*1024*1024
certificates = "/tmp/peers/pros/certs"   -- dir, not used; explicit ssl below
ssl = { certificate = "/tmp/peers/cert.pem"; key = "/tmp/peers/cert.pem"; }
-- SCRAM keys stored, as Herald stores them: SCRAM-SHA-256, 4096 iterations (Prosody 0.12
-- offers SCRAM only for the configured password_hash).
authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = 4096
storage = "internal"          -- or "memory" (then accounts must be created at runtime, see report)
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "ping"; "presence"; "message"; "iq";
  "posix"; "admin_shell"; "admin_socket";
}
modules_disabled = { "s2s"; "offline"; "limits"; }
statistics = nil
VirtualHost "localhost"
