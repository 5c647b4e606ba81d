package main

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"strconv"
	"time"
)

// LVP's sidecar port and the layout of its expiry: the Z is a literal, so the value is the container's wall clock
// (UTC in Velero's images); the stand-in formats UTC explicitly.
const (
	fileServerPort = 3000
	expiryLayout   = "2006-01-02T15:04:05.000Z"
)

// signURL builds http://<podIP>:3000/<bucket>/<key>?expires=<time> and appends &signature= with the URL-safe,
// padded base64 of HMAC-SHA1 over that whole URL (kots-and-lvp.md 5.1).
func signURL(key []byte, podIP, bucket, object string, expires time.Time) (string, error) {
	if podIP == "" {
		return "", errors.New("POD_IP is not set on the velero container")
	}
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(podIP, strconv.Itoa(fileServerPort)), Path: "/" + bucket + "/" + object}
	query := url.Values{}
	query.Set("expires", expires.UTC().Format(expiryLayout))
	u.RawQuery = query.Encode()
	mac := hmac.New(sha1.New, key)
	mac.Write([]byte(u.String()))
	return u.String() + "&signature=" + base64.URLEncoding.EncodeToString(mac.Sum(nil)), nil
}
