// Package autoconfig serves pombo's HTTP endpoints: the Thunderbird
// autoconfiguration file, so that a user types only an address and a
// password, and a health check for monitoring.
package autoconfig

import (
	"encoding/xml"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Server describes the mail services to announce.
type Server struct {
	Hostname string
	IMAPPort int // implicit TLS; 0: not offered
	POP3Port int // implicit TLS; 0: not offered
	SMTPPort int // submission over implicit TLS; 0: not offered
	// Healthy reports whether the server can serve (e.g. storage answers).
	Healthy func() error
}

// PortOf returns the port of the first "host:port" in addrs, or 0.
func PortOf(addrs []string) int {
	for _, a := range addrs {
		if _, p, err := net.SplitHostPort(a); err == nil {
			if n, err := strconv.Atoi(p); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /mail/config-v1.1.xml", s.thunderbird)
	mux.HandleFunc("GET /.well-known/autoconfig/mail/config-v1.1.xml", s.thunderbird)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if s.Healthy != nil {
			if err := s.Healthy(); err != nil {
				http.Error(w, "unhealthy", http.StatusServiceUnavailable)
				return
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	return mux
}

// NewHTTPServer returns an http.Server with timeouts suited to the open
// internet.
func (s *Server) NewHTTPServer() *http.Server {
	return &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

type serverXML struct {
	Type           string `xml:"type,attr"`
	Hostname       string `xml:"hostname"`
	Port           int    `xml:"port"`
	SocketType     string `xml:"socketType"`
	Username       string `xml:"username"`
	Authentication string `xml:"authentication"`
}

type providerXML struct {
	ID          string      `xml:"id,attr"`
	Domain      string      `xml:"domain"`
	DisplayName string      `xml:"displayName"`
	Incoming    []serverXML `xml:"incomingServer"`
	Outgoing    []serverXML `xml:"outgoingServer"`
}

type clientConfigXML struct {
	XMLName  xml.Name    `xml:"clientConfig"`
	Version  string      `xml:"version,attr"`
	Provider providerXML `xml:"emailProvider"`
}

// thunderbird answers the autoconfig request (Thunderbird sends
// ?emailaddress=user@domain).
func (s *Server) thunderbird(w http.ResponseWriter, r *http.Request) {
	domain := s.Hostname
	if addr := r.URL.Query().Get("emailaddress"); addr != "" {
		if at := strings.LastIndexByte(addr, '@'); at >= 0 && len(addr) < 320 && isDomain(addr[at+1:]) {
			domain = strings.ToLower(addr[at+1:])
		}
	}
	srv := func(typ string, port int) serverXML {
		return serverXML{Type: typ, Hostname: s.Hostname, Port: port, SocketType: "SSL",
			Username: "%EMAILADDRESS%", Authentication: "password-cleartext"}
	}
	c := clientConfigXML{Version: "1.1", Provider: providerXML{ID: s.Hostname, Domain: domain, DisplayName: domain + " (pombo)"}}
	if s.IMAPPort > 0 {
		c.Provider.Incoming = append(c.Provider.Incoming, srv("imap", s.IMAPPort))
	}
	if s.POP3Port > 0 {
		c.Provider.Incoming = append(c.Provider.Incoming, srv("pop3", s.POP3Port))
	}
	if s.SMTPPort > 0 {
		c.Provider.Outgoing = append(c.Provider.Outgoing, srv("smtp", s.SMTPPort))
	}
	out, err := xml.MarshalIndent(c, "", "  ")
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Write([]byte(xml.Header))
	w.Write(out)
	w.Write([]byte("\n"))
}

// isDomain accepts LDH names only; anything else is not echoed back.
func isDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, c := range d {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
