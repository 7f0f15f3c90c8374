package event

import (
	"strings"
	"testing"
	"time"
)

// C1 control characters (U+0080 to U+009F; U+009B is a terminal's CSI)
// are refused in the identifier columns of a new event, insight or audit
// record, as C0 ones are; records already in a spool, accepted by an
// earlier version, still validate when read back (the uploader loads them
// rather than quarantine them); feature_json, free JSON, keeps them.
func TestC1ControlsRefusedOnIntakeOnly(t *testing.T) {
	t.Parallel()
	const csi = "\u009b"
	t.Run("event", func(t *testing.T) {
		t.Parallel()
		for field, line := range map[string]string{
			"activity_id":           `{"activity":"called_tool","activity_id":"a\u009b31mb"}`,
			"anonymous_customer_id": `{"activity":"called_tool","anonymous_customer_id":"\u0080"}`,
			"link":                  `{"activity":"called_tool","link":"https://x.example/\u009f"}`,
		} {
			in, err := DecodeInput([]byte(line))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Normalize(in, defaults())
			if !IsValidation(err) || !strings.Contains(err.Error(), field+": contains control characters (U+00") {
				t.Errorf("%s: %v, want it refused as a control character", field, err)
			}
		}
		// The customer is the token's or the configuration's (refused
		// where customers are named): one made before the rule keeps
		// its records coming.
		in, _ := DecodeInput([]byte(`{"activity":"called_tool","customer":"a\u0085b"}`))
		if _, err := Normalize(in, defaults()); err != nil {
			t.Errorf("C1 in an older customer: %v", err)
		}
		// Features are free JSON: kept, as the warehouse keeps them.
		in, _ = DecodeInput([]byte(`{"activity":"called_tool","feature_json":{"text":"\u009b[31mred"}}`))
		if _, err := Normalize(in, defaults()); err != nil {
			t.Errorf("C1 in features: %v", err)
		}
		// A record written before the rule: read back, it validates.
		e := Event{ActivityID: "old" + csi + "id", Customer: "a\u0085", Activity: "called_tool", TS: fixedNow,
			Features: []byte(`{}`), ReceivedAt: fixedNow, Source: SourceCLI}
		b, err := Marshal(&e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := Validate(&got, got.ReceivedAt); err != nil || got.ActivityID != e.ActivityID {
			t.Errorf("stored record with C1: %v (%q)", err, got.ActivityID)
		}
	})
	t.Run("insight", func(t *testing.T) {
		t.Parallel()
		in, err := DecodeInsightInput([]byte(`{"atom_id":"x\u009by","subject":"user","metric":"m","value":1}`))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NormalizeInsight(in, defaults()); !IsValidation(err) || !strings.Contains(err.Error(), "atom_id: contains control characters (U+009B") {
			t.Errorf("C1 in atom_id: %v", err)
		}
		x := Insight{AtomID: "x" + csi + "y", Customer: "alice", Subject: "user", Metric: "m", Value: []byte(`1`),
			TS: fixedNow, ReceivedAt: fixedNow, Source: SourceCLI}
		b, err := MarshalInsight(&x)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodeInsight(b); err != nil || got.AtomID != x.AtomID {
			t.Errorf("stored insight with C1: %v (%q)", err, got.AtomID)
		}
	})
	t.Run("audit", func(t *testing.T) {
		t.Parallel()
		for field, f := range map[string]func(a *Audit){
			"audit_id":  func(a *Audit) { a.AuditID = "a" + csi },
			"principal": func(a *Audit) { a.Principal = "analyst:" + csi + "2J" },
			"target":    func(a *Audit) { a.Target = "t" + csi },
		} {
			a := goodAudit()
			f(&a)
			if err := ValidateNewAudit(&a, fixedNow); !IsValidation(err) || !strings.Contains(err.Error(), field+": contains control characters (U+00") {
				t.Errorf("new record, C1 in %s: %v", field, err)
			}
			// Read back (DecodeAudit's rules): loaded as it is.
			a = goodAudit()
			f(&a)
			if err := ValidateAudit(&a, fixedNow); err != nil {
				t.Errorf("stored record, C1 in %s: %v", field, err)
			}
		}
		// A detail is cleaned, never refused: C1 becomes U+FFFD, as C0 does.
		for _, validate := range []func(*Audit, time.Time) error{ValidateAudit, ValidateNewAudit} {
			a := goodAudit()
			a.Detail = "bad " + csi + "[2J\x1b[H end\n"
			if err := validate(&a, fixedNow); err != nil || a.Detail != "bad \uFFFD[2J\uFFFD[H end\n" {
				t.Errorf("detail: %v %q", err, a.Detail)
			}
		}
	})
}
