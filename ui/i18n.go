package ui

import (
	"os"
	"strings"

	"github.com/lanchat/lanchat/peer"
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
	"direct":               "直连",
	"relayed":              "经中继",
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
	"Send to several…":     "群发…",
	"Send to several":      "群发消息",
	"File…":                "文件…",
	"Folder…":              "文件夹…",
	"Save as…":             "另存为…",
	"left":                 "剩余",
	"Drop files on a contact or an open conversation.": "请把文件拖到联系人或已打开的会话上。",
	"Open": "拆封",
	"Sealed message: open it to read it (the sender is told).": "密封消息：拆封后可阅读（对方会收到拆封通知）。",
	"Auto-reply while away": "离开时的自动回复",
	"Save":                  "保存",
	"Show lanchat":          "显示 lanchat",
	"Quit":                  "退出",
	"lanchat keeps running in the tray. Quit from its menu.": "lanchat 仍在托盘中运行，可从托盘菜单退出。",
	"Everyone":                         "全选",
	"Message to everyone ticked":       "发给所有勾选联系人的消息",
	"Tick at least one contact.":       "请至少勾选一位联系人。",
	"Type a message or add a file.":    "请输入消息或添加文件。",
	"Browse…":                          "浏览…",
	"(after restart)":                  "（重启后生效）",
	"Nickname":                         "昵称",
	"Group":                            "分组",
	"Auto-reply":                       "自动回复",
	"Download folder":                  "下载文件夹",
	"Encoding for old clients":         "旧客户端编码",
	"Extra broadcast addresses":        "额外广播地址",
	"Accept files without asking from": "自动接收以下联系人的文件",
	"Relay address":                    "中继服务器地址",
	"Settings":                         "设置",
	"nicknames or user@host, comma separated; * for everyone": "昵称或 用户@主机，用逗号分隔；* 表示所有人",
	"Settings saved.": "设置已保存。",
	"Settings saved. Encoding, broadcast addresses, auto-accept and relay take effect after restart.": "设置已保存。编码、广播地址、自动接收和中继在重启后生效。",
	"Data folder: %s": "数据文件夹：%s",
	"Running as: %s":  "正在运行：%s",
	"If it is the desktop app, use its window or its tray icon; if it is `lanchat serve`, stop it first. To run a second lanchat on this computer, start it with --data and another folder, and --port.": "如果它是桌面程序，请使用它的窗口或托盘图标；如果它是 `lanchat serve`，请先停止它。如需在本机再运行一个 lanchat，请用 --data 指定另一个文件夹，并用 --port 指定端口。",
	"Another lanchat is already running on this data folder.": "另一个 lanchat 已在使用此数据文件夹。",
	"lanchat could not start.":                                "lanchat 无法启动。",
	"Notification":                                            "通知",
	"to":                                                      "发给",
	"from":                                                    "来自",
	"Relay: %s":                                               "中继：%s",
	"connected":                                               "已连接",
	"not connected":                                           "未连接",
	"connecting…":                                             "正在连接…",
	"public":                                                  "公网",
	"cone NAT (direct possible)":                              "锥形 NAT（可直连）",
	"symmetric NAT (via relay)":                               "对称 NAT（经中继）",
	"no NAT":                                                  "无 NAT",
	"UDP blocked":                                             "UDP 被阻断",
	"NAT type unknown":                                        "NAT 类型未知",
	peer.NoticeFlood:                                          "%v 正在向端口 %d 大量发包，已丢弃它的数据包",
	peer.NoticeDropped:                                        "界面处理太慢，丢掉了 %d 个事件；每条消息都在历史记录里",
	peer.NoticeNoBroadcast: "没有能广播的网卡，也没有配置额外地址：局域网里没人能看到你。" +
		"请连接网络，或添加对方的地址或网段（设置，或 --broadcast）",
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
