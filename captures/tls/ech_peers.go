// Command ech_peers runs one real TLS 1.3 connection with Encrypted Client Hello
// (RFC 9849) between Go's crypto/tls client and server on 127.0.0.1, for
// make_ech.py, which writes what it prints into a capture.
//
// Input (stdin, JSON): the inner (real) server name, the public name the outer
// ClientHello shows, the ECH config id and HPKE AEAD id, whether the server only
// takes P-256 (the client's first key shares then get a HelloRetryRequest), the
// HTTP/1.1 requests the client sends and the response each gets.
//
// Output (stdout, JSON): the bytes each side sent, in order, as the client saw
// them; the NSS key log Go wrote (its TLS 1.3 secrets are keyed by the inner
// ClientHello's random, as the key log draft says for accepted ECH); and the two
// ECH lines of that draft (section 2.3), keyed by the outer ClientHello's random:
// ECH_SECRET, the HPKE KEM shared secret, which this program derives from the
// server's private key and the enc of the outer ClientHello, as a server that logs
// it would; and ECH_CONFIG, the config used.
//
// Needs Go >= 1.24 (server-side ECH). Run by make_ech.py; not part of the build.
package main

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"sync"
	"time"
)

type input struct {
	Inner      string   `json:"inner"`
	Public     string   `json:"public"`
	ConfigID   uint8    `json:"config_id"`
	AEAD       uint16   `json:"aead"`
	RetryP256  bool     `json:"retry_p256"`
	Requests   []string `json:"requests"`
	Response   string   `json:"response"`
}

type flight struct {
	FromClient bool   `json:"from_client"`
	Hex        string `json:"hex"`
}

type output struct {
	Flights  []flight `json:"flights"`
	KeyLog   string   `json:"keylog"`
	ECHLines string   `json:"ech_lines"`
}

// recorder wraps the client's connection and notes every chunk each way.
type recorder struct {
	net.Conn
	mu      sync.Mutex
	flights []flight
}

func (r *recorder) note(fromClient bool, b []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.flights)
	if n > 0 && r.flights[n-1].FromClient == fromClient {
		r.flights[n-1].Hex += hex.EncodeToString(b)
		return
	}
	r.flights = append(r.flights, flight{fromClient, hex.EncodeToString(b)})
}

func (r *recorder) Write(b []byte) (int, error) {
	r.note(true, b)
	return r.Conn.Write(b)
}

func (r *recorder) Read(b []byte) (int, error) {
	n, err := r.Conn.Read(b)
	if n > 0 {
		r.note(false, b[:n])
	}
	return n, err
}

func u16(b *bytes.Buffer, v uint16) { binary.Write(b, binary.BigEndian, v) }

// echConfig is an ECHConfig (RFC 9849 section 4) for DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256 and one AEAD.
func echConfig(id uint8, pub []byte, aead uint16, publicName string) []byte {
	var c bytes.Buffer
	c.WriteByte(id)
	u16(&c, 0x0020)
	u16(&c, uint16(len(pub)))
	c.Write(pub)
	u16(&c, 4)
	u16(&c, 0x0001)
	u16(&c, aead)
	c.WriteByte(0) // maximum_name_length
	c.WriteByte(byte(len(publicName)))
	c.WriteString(publicName)
	u16(&c, 0) // extensions
	var out bytes.Buffer
	u16(&out, 0xfe0d)
	u16(&out, uint16(c.Len()))
	out.Write(c.Bytes())
	return out.Bytes()
}

func certificate(names ...string) (tls.Certificate, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IsCA:         true,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, leaf, err
}

// outerECH reads the client random and the ECH extension's enc from the first
// ClientHello record the client wrote.
func outerECH(records []byte) (random, enc []byte, err error) {
	bad := errors.New("outer ClientHello not readable")
	if len(records) < 9 || records[0] != 22 || records[5] != 1 {
		return nil, nil, bad
	}
	body := records[9:]
	if len(body) < 35 {
		return nil, nil, bad
	}
	random = body[2:34]
	p := 34
	skip := func(width int) bool {
		if p+width > len(body) {
			return false
		}
		n := 0
		for i := 0; i < width; i++ {
			n = n<<8 | int(body[p+i])
		}
		p += width + n
		return p <= len(body)
	}
	if !skip(1) || !skip(2) || !skip(1) || p+2 > len(body) {
		return nil, nil, bad
	}
	p += 2
	for p+4 <= len(body) {
		t := binary.BigEndian.Uint16(body[p:])
		n := int(binary.BigEndian.Uint16(body[p+2:]))
		ext := body[p+4 : p+4+n]
		p += 4 + n
		if t != 0xfe0d || len(ext) < 8 || ext[0] != 0 {
			continue
		}
		encLen := int(binary.BigEndian.Uint16(ext[6:]))
		return random, ext[8 : 8+encLen], nil
	}
	return nil, nil, errors.New("no outer ECH extension")
}

// kemSharedSecret is DHKEM(X25519, HKDF-SHA256)'s Decap (RFC 9180 section 4.1).
func kemSharedSecret(priv *ecdh.PrivateKey, enc []byte) ([]byte, error) {
	pkE, err := ecdh.X25519().NewPublicKey(enc)
	if err != nil {
		return nil, err
	}
	dh, err := priv.ECDH(pkE)
	if err != nil {
		return nil, err
	}
	suite := []byte("KEM\x00\x20")
	ikm := append(append(append([]byte("HPKE-v1"), suite...), "eae_prk"...), dh...)
	prk, err := hkdf.Extract(sha256.New, ikm, nil)
	if err != nil {
		return nil, err
	}
	kemContext := append(append([]byte{}, enc...), priv.PublicKey().Bytes()...)
	info := append(append(append([]byte{0, 32}, "HPKE-v1"...), suite...), "shared_secret"...)
	info = append(info, kemContext...)
	return hkdf.Expand(sha256.New, prk, string(info), 32)
}

func run(in input) (*output, error) {
	echKey, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	config := echConfig(in.ConfigID, echKey.PublicKey().Bytes(), in.AEAD, in.Public)
	var list bytes.Buffer
	u16(&list, uint16(len(config)))
	list.Write(config)

	cert, leaf, err := certificate(in.Inner, in.Public)
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	var keyLog bytes.Buffer
	server := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		EncryptedClientHelloKeys: []tls.EncryptedClientHelloKey{{
			Config: config, PrivateKey: echKey.Bytes(), SendAsRetry: true,
		}},
		SessionTicketsDisabled: true,
	}
	if in.RetryP256 {
		server.CurvePreferences = []tls.CurveID{tls.CurveP256}
	}
	client := &tls.Config{
		ServerName:                     in.Inner,
		RootCAs:                        roots,
		MinVersion:                     tls.VersionTLS13,
		EncryptedClientHelloConfigList: list.Bytes(),
		KeyLogWriter:                   &keyLog,
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	served := make(chan error, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		conn := tls.Server(raw, server)
		defer conn.Close()
		buf := make([]byte, 1<<16)
		for range in.Requests {
			// Each request arrives whole in one read on loopback; the client waits
			// for the response before sending the next.
			if _, err := conn.Read(buf); err != nil {
				served <- err
				return
			}
			if _, err := conn.Write([]byte(in.Response)); err != nil {
				served <- err
				return
			}
		}
		served <- nil
	}()

	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		return nil, err
	}
	rec := &recorder{Conn: raw}
	conn := tls.Client(rec, client)
	if err := conn.Handshake(); err != nil {
		return nil, err
	}
	if !conn.ConnectionState().ECHAccepted {
		return nil, errors.New("ECH not accepted")
	}
	resp := make([]byte, len(in.Response))
	for _, r := range in.Requests {
		if _, err := conn.Write([]byte(r)); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(conn, resp); err != nil {
			return nil, err
		}
	}
	if err := <-served; err != nil {
		return nil, err
	}
	conn.Close()

	first, err := hex.DecodeString(rec.flights[0].Hex)
	if err != nil {
		return nil, err
	}
	random, enc, err := outerECH(first)
	if err != nil {
		return nil, err
	}
	secret, err := kemSharedSecret(echKey, enc)
	if err != nil {
		return nil, err
	}
	lines := fmt.Sprintf("ECH_SECRET %x %x\nECH_CONFIG %x %x\n", random, secret, random, config)
	return &output{Flights: rec.flights, KeyLog: keyLog.String(), ECHLines: lines}, nil
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintln(os.Stderr, "ech_peers: reading input:", err)
		os.Exit(1)
	}
	out, err := run(in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ech_peers:", err)
		os.Exit(1)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "ech_peers:", err)
		os.Exit(1)
	}
}
