package peer

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// lineCases are records whose history lines must be exactly json.Marshal's.
var lineCases = []struct {
	name string
	rec  record
}{
	{"zero", record{}},
	{"outgoing", record{Message: Message{ID: "o1763900000", Peer: "bob@pc", Nick: "Bob", Dir: Outgoing,
		Text: "hello", Time: time.Date(2026, 11, 23, 14, 11, 7, 123456789, time.UTC), Status: Sending, PacketNo: 1763900000}}},
	{"update", record{Message: Message{ID: "o1", Peer: "bob@pc", Status: Failed, Error: `not acknowledged after 5 tries in 5s`}, Update: true}},
	{"incoming sealed auto-reply", record{Message: Message{ID: "i18a-7", Peer: "李@主机:2426", Dir: Incoming,
		Text: "你好 Bob\n第二行 👋", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("CST", 8*3600)),
		Sealed: true, AutoRe: true, Status: Received, PacketNo: 7}}},
	{"parts", record{Message: Message{ID: "o2", Part: 2, Parts: 3, PacketNo: 1<<64 - 1}}},
	{"escapes", record{Message: Message{Text: "<a href=\"x\">&amp;</a>\\ \b\f\n\r\t\x00\x01\x1f\x7f \u2028\u2029 \xff\xfe end\xe4\xbd",
		Nick: "tab\there", Error: "\xc0\xaf"}}},
	{"files", record{Message: Message{ID: "o3", Files: []File{
		{ID: 0, Name: "a.txt", Size: 12, MTime: time.Unix(1700000000, 5).UTC()},
		{ID: 1, Name: "dir <1>", Folder: true, Size: -1, MTime: time.Unix(0, 0).In(time.FixedZone("", -(3*3600 + 30*60)))},
	}}}},
	{"empty files", record{Message: Message{Files: []File{}}}},
	{"zone seconds", record{Message: Message{Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("LMT", 8*3600+5*60+43))}}},
	{"year 10000", record{Message: Message{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	{"year -1", record{Message: Message{Time: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}},
	{"zone 24h", record{Message: Message{Time: time.Date(2000, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))}}},
	{"file year 10000", record{Message: Message{Files: []File{{MTime: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}}},
}

func TestHistoryLine(t *testing.T) {
	for _, c := range lineCases {
		t.Run(c.name, func(t *testing.T) { checkLine(t, c.rec) })
	}
}

// TestHistoryLineEveryField sets every field of a record, so that a field
// added to Message or File without a line in appendRecord fails here.
func TestHistoryLineEveryField(t *testing.T) {
	var rec record
	fill(t, reflect.ValueOf(&rec).Elem())
	checkLine(t, rec)
}

// fill gives every field of the struct v a value that is not empty.
func fill(t *testing.T, v reflect.Value) {
	for i := range v.NumField() {
		f := v.Field(i)
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Date(2026, 11, 23, 14, 0, 0, 1, time.FixedZone("", 3600))))
		case f.Kind() == reflect.Struct:
			fill(t, f)
		case f.Kind() == reflect.String:
			f.SetString("<" + v.Type().Field(i).Name + ">")
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.CanInt():
			f.SetInt(int64(-i - 1))
		case f.CanUint():
			f.SetUint(uint64(i + 1))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			f.Set(reflect.MakeSlice(f.Type(), 2, 2))
			fill(t, f.Index(0))
			fill(t, f.Index(1))
		default:
			t.Fatalf("fill: no value for %s %s", v.Type().Field(i).Name, f.Type())
		}
	}
}

// FuzzHistoryLine checks that appendLine writes what json.Marshal does.
func FuzzHistoryLine(f *testing.F) {
	for _, c := range lineCases {
		m := c.rec.Message
		f.Add(m.ID, m.Text, m.Error, m.Time.UnixNano(), int32(0), m.PacketNo, m.Part, m.Sealed, c.rec.Update)
	}
	f.Add("x", "\u2028\xed\xa0\x80", "", int64(-1), int32(-14*3600), uint64(3), -4, true, false)
	f.Fuzz(func(t *testing.T, id, text, errText string, nanos int64, zone int32, no uint64, part int, sealed, update bool) {
		tm := time.Unix(0, nanos).In(time.FixedZone("z", int(zone)))
		rec := record{Message: Message{ID: id, Peer: text + id, Nick: errText, Dir: Direction(id), Text: text, Time: tm,
			Sealed: sealed, AutoRe: !sealed, Status: Status(errText), Error: errText, PacketNo: no, Part: part, Parts: -part,
			Files: []File{{ID: no, Name: text, Size: nanos, Folder: update, MTime: tm}}}, Update: update}
		checkLine(t, rec)
	})
}

func checkLine(t *testing.T, rec record) {
	t.Helper()
	want, wantErr := json.Marshal(rec)
	got, err := appendLine([]byte("prefix"), &rec)
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("appendLine error %v, json.Marshal error %v", err, wantErr)
	}
	if err != nil {
		return
	}
	if !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Errorf("appendLine:\n got %s\nwant prefix%s", got, want)
	}
	var back record
	if err := json.Unmarshal(got[len("prefix"):], &back); err != nil {
		t.Errorf("line does not read back: %v", err)
	}
}

func BenchmarkHistoryLine(b *testing.B) {
	rec := record{Message: Message{ID: "i18a0c2f3e4b5d6-1763900000", Peer: "bench01@host", Nick: "bench01", Dir: Incoming,
		Text: "lanchat benchmark message #000042", Time: time.Now(), Status: Received, PacketNo: 1763900000}}
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf, _ = appendLine(buf[:0], &rec)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			json.Marshal(rec)
		}
	})
}
