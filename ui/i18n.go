package ui

import (
	"os"
	"strings"
)

// SystemLang returns "zh" when the system language (LC_ALL, LC_MESSAGES,
// LANG, in that order) is Chinese, and "en" otherwise.
func SystemLang() string {
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if v := os.Getenv(k); v != "" {
			if strings.HasPrefix(strings.ToLower(v), "zh") {
				return "zh"
			}
			return "en"
		}
	}
	return "en"
}

// zh holds the Simplified Chinese strings, keyed by their English text.
var zh = map[string]string{
	"lanchat":              "lanchat 局域网聊天",
	"Search":               "搜索",
	"Send":                 "发送",
	"Seal":                 "密封",
	"Away":                 "离开",
	"away":                 "离开",
	"offline":              "离线",
	"No group":             "未分组",
	"Accept":               "接收",
	"Decline":              "拒绝",
	"Cancel":               "取消",
	"Choose a contact":     "请选择联系人",
	"Type a message":       "输入消息（Enter 发送，Shift+Enter 换行）",
	"offers":               "发来文件",
	"Send failed":          "发送失败",
	"Accept failed":        "接收失败",
	"Decline failed":       "拒绝失败",
	"auto-reply":           "自动回复",
	"sealed":               "密封",
	"sending":              "发送中",
	"delivered":            "已送达",
	"failed":               "失败",
	"opened":               "已拆封",
	"queued":               "排队中",
	"running":              "传输中",
	"done":                 "完成",
	"cancelled":            "已取消",
	"Notice":               "提示",
	"IP Messenger / Feige": "飞鸽传书 / IP Messenger",
	"FeiQ":                 "飞秋",
	"to":                   "发给",
	"from":                 "来自",
}

// tr translates English UI text for one language.
type tr string

func (l tr) T(s string) string {
	if l == "zh" {
		if t, ok := zh[s]; ok {
			return t
		}
	}
	return s
}

// client names the program a contact uses.
func (l tr) client(c string) string {
	switch c {
	case "ipmsg":
		return l.T("IP Messenger / Feige")
	case "feiq":
		return l.T("FeiQ")
	case "iptux":
		return "iptux"
	case "lanchat", "":
		return "lanchat"
	}
	return c
}
